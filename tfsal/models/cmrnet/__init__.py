"""CMRNet, the cross-concatenated multi-scale residual network (registered as "cmrnet")."""

from tfsal.models.cmrnet.blocks import CrossConcatResidualBlock
from tfsal.models.cmrnet.global_context import GlobalContextGate
from tfsal.models.cmrnet.model import cmrnet

__all__ = ["CrossConcatResidualBlock", "GlobalContextGate", "cmrnet"]
