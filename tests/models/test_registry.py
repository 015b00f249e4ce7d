"""The registry checks every builder's common arguments once, the same way."""

import keras
import pytest

from tfsal.models import registry


@pytest.fixture
def scratch_registry(monkeypatch):
    """Registrations made in a test are forgotten after it."""
    monkeypatch.setattr(registry, "_MODELS", dict(registry._MODELS))


def _register(name, **options):
    received = {}

    def build(*, input_size=None, taps=(), weights=None, encoder_weights=None):
        received.update(input_size=input_size, weights=weights, encoder_weights=encoder_weights)
        inputs = keras.Input((*(input_size or (None, None)), 3))
        return keras.Model(inputs, {"saliency": inputs[..., :1]})

    registry.register_model(name, size_multiple=8, default_input_size=(16, 24), **options)(build)
    return received


def test_a_builder_must_take_the_common_arguments(scratch_registry):
    def build(*, taps=(), weights=None, encoder_weights=None):
        raise AssertionError("never built")

    with pytest.raises(TypeError, match="Received: a builder without input_size"):
        registry.register_model("lacks_size")(build)


def test_input_size_is_checked_and_filled_before_the_builder_runs(scratch_registry):
    received = _register("fixed_size", any_input_size=False)
    registry.get("fixed_size")
    assert received["input_size"] == (16, 24)  # the registered default
    registry.get("fixed_size", input_size=[8, 40])
    assert received["input_size"] == (8, 40)
    for size, message in (((8, 12), "multiples of 8"), ((8,), "positive integer sides")):
        with pytest.raises(ValueError, match=message):
            registry.get("fixed_size", input_size=size)
    any_size = _register("any_size")
    registry.get("any_size")
    assert any_size["input_size"] is None


def test_weight_paths_are_checked_the_same_way_for_every_model(scratch_registry, tmp_path):
    received = _register("with_encoder", encoder_layer_prefixes=("enc",))
    with pytest.raises(FileNotFoundError, match="weights file not found.*absent.h5"):
        registry.get("with_encoder", weights=tmp_path / "absent.h5")
    (tmp_path / "model.ckpt.index").write_bytes(b"")
    registry.get("with_encoder", weights=tmp_path / "model.ckpt", encoder_weights="imagenet")
    assert received["encoder_weights"] == "imagenet"
    _register("no_encoder")
    with pytest.raises(ValueError, match="'no_encoder' has no pretrained encoder"):
        registry.get("no_encoder", encoder_weights="imagenet")


def test_the_registration_holds_the_encoder_facts_training_needs(scratch_registry):
    _register(
        "facts",
        encoder_layer_prefixes=["enc_"],
        pretrained_encoder_file="enc.pth",
        fixed_with_frozen_encoder=["smooth"],
    )
    info = registry.model_info("facts")
    assert info.encoder_layer_prefixes == ("enc_",) and info.pretrained_encoder_file == "enc.pth"
    assert info.fixed_with_frozen_encoder == ("smooth",)
    unisal = registry.model_info("unisal")
    assert not unisal.any_input_size and "stem_" in unisal.encoder_layer_prefixes


def test_a_model_can_be_unregistered_and_registered_again(scratch_registry):
    _register("temporary")
    info = registry.unregister_model("temporary")
    assert info.name == "temporary" and "temporary" not in registry.list_models()
    with pytest.raises(ValueError, match="Unknown model 'temporary'"):
        registry.unregister_model("temporary")
    _register("temporary")  # the name is free again
    assert registry.model_info("temporary").size_multiple == 8


def test_the_training_tests_model_is_registered_only_while_they_use_it():
    # Imported here: importing it must not register it (the parametrised tests over
    # list_models() would then depend on what pytest collected first).
    from tests.training import tiny_model

    assert tiny_model.NAME not in registry.list_models()
    with tiny_model.registered():
        assert tiny_model.NAME in registry.list_models()
    assert tiny_model.NAME not in registry.list_models()
