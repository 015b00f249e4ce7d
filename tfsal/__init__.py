"""tfsal: explainable deep visual saliency models in TensorFlow/Keras.

After Malladi, Mukhopadhyay, Larabi, Chaudhury, "Deriving Explanation of Deep Visual
Saliency Models" (arXiv 2109.03575, 2021): the activation maps of a deep saliency
model's intermediate layers are rebuilt as learned linear combinations of log-Gabor
filter responses of the image, and the saliency map is produced from those
reconstructions.
"""

__version__ = "0.1.0"
