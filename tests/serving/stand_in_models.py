"""SavedModels with the serving contract's signatures, until serving.export lands."""

from pathlib import Path

import tensorflow as tf

MAX_PIXELS = 4_000_000


class ContractModule(tf.Module):
    """serving_default / predict_tensor as in notes/serving_contract.md; saliency =
    version x grey level / 255, so a response tells which version answered."""

    def __init__(self, version: int):
        super().__init__()
        self.scale = tf.Variable(float(version))

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32, name="images")])
    def predict_tensor(self, images):
        return {"saliency": tf.reduce_mean(images, axis=-1) / 255.0 * self.scale}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
    def serving_default(self, image_bytes):
        def decode(data):
            shape = tf.cond(
                tf.io.is_jpeg(data),
                lambda: tf.image.extract_jpeg_shape(data),
                lambda: tf.shape(tf.io.decode_image(data, channels=3, expand_animations=False)),
            )
            tf.debugging.assert_less_equal(
                tf.cast(shape[0], tf.int64) * tf.cast(shape[1], tf.int64),
                tf.constant(MAX_PIXELS, tf.int64),
                message="image declares more pixels than allowed",
            )
            image = tf.io.decode_image(data, channels=3, expand_animations=False)
            return tf.cast(image, tf.float32)

        def size(data):
            return tf.shape(decode(data))[:2]

        sizes = tf.map_fn(size, image_bytes, fn_output_signature=tf.int32)
        height, width = tf.reduce_max(sizes[:, 0]), tf.reduce_max(sizes[:, 1])

        def saliency(data):
            grey = self.predict_tensor(decode(data)[tf.newaxis])["saliency"][0]
            return tf.pad(grey, [[0, height - tf.shape(grey)[0]], [0, width - tf.shape(grey)[1]]])

        maps = tf.map_fn(
            saliency, image_bytes, fn_output_signature=tf.TensorSpec([None, None], tf.float32)
        )
        return {"saliency": maps, "height": sizes[:, 0], "width": sizes[:, 1]}


def write(base: Path, version: int) -> Path:
    module = ContractModule(version)
    path = Path(base) / str(version)
    tf.saved_model.save(
        module,
        str(path),
        signatures={
            "serving_default": module.serving_default,
            "predict_tensor": module.predict_tensor,
        },
    )
    return path
