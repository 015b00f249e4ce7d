"""CMRNet, the cross-concatenated multi-scale residual network (registered as "cmrnet")."""

from tfsal.models.cmrnet.blocks import CrossConcatResidualBlock
from tfsal.models.cmrnet.model import cmrnet
from tfsal.models.cmrnet.spatial_log_softmax import SpatialLogSoftmax

__all__ = ["CrossConcatResidualBlock", "SpatialLogSoftmax", "cmrnet"]
