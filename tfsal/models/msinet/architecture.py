"""MSI-Net's layout: the constants the model and its checkpoint import share.

Kroner et al., Neural Networks 2020. ``tfsal.models.msinet.model`` builds the layers
from these; ``tfsal.weights.msinet`` derives the original TF1 variable scopes from the
same stages, so the two cannot drift apart. Imports nothing of tfsal.
"""

# The released MSI-Net subtracts the Caffe BGR means from RGB inputs, in this order.
CAFFE_MEAN_AS_RELEASED = (103.939, 116.779, 123.68)

# Network input (height, width) the released models were trained with, per data set.
DATASET_INPUT_SIZES = {
    "salicon": (240, 320),
    "mit1003": (360, 360),
    "cat2000": (216, 384),
    "dutomron": (360, 360),
    "pascals": (360, 360),
    "osie": (240, 320),
    "fiwi": (216, 384),
}

# (stage, convolutions, channels, dilation) of the VGG16 encoder.
ENCODER_STAGES = ((1, 2, 64, 1), (2, 2, 128, 1), (3, 3, 256, 1), (4, 3, 512, 1), (5, 3, 512, 2))
ASPP_RATES = (4, 8, 12)
ASPP_CHANNELS = 256
DECODER_CHANNELS = (128, 64, 32)
