"""The job's stage clock: where a run's wall and CPU time went."""

import re
import time

from training.job import StageClock


def test_laps_book_wall_and_cpu_time_to_their_stage():
    clock = StageClock()
    time.sleep(0.05)  # wall time without CPU time
    clock.lap("wait")
    started = time.process_time()
    while time.process_time() - started < 0.05:  # CPU time
        pass
    clock.lap("work")
    clock.lap("wait")  # a stage booked twice adds up
    (wait_wall, wait_cpu), (work_wall, work_cpu) = clock.seconds["wait"], clock.seconds["work"]
    assert list(clock.seconds) == ["wait", "work"]
    assert wait_wall >= 0.05 and wait_cpu < 0.04
    assert work_cpu >= 0.05 and work_wall >= 0.05
    assert clock.total() >= wait_wall + work_wall
    pattern = r"wait \d+ s \(CPU \d+ s\), work \d+ s \(CPU \d+ s\)"
    assert re.fullmatch(pattern, clock.summary()), clock.summary()
