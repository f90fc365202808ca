"""Pictures of digits prepared the way MNIST's were (the ``chainrule[image]`` extra).

``preprocess(path_or_bytes)`` reads a PNG, JPEG, BMP or GIF with Pillow and
returns the uint8 ``(28, 28)`` digit a model trained on MNIST expects: ink bright
on black, 20 pixels in its longer side, centred by mass. ``to_mnist`` does the
same to an array. ``preprocess_fashion`` prepares a picture of clothing as
Fashion-MNIST's were (longer side 28 pixels, centred). Importing this package
needs only NumPy; Pillow is imported when a file is read. See ``docs/images.md``.
"""

from chainrule.imaging.errors import BlankImageError, ImageError, MissingPillowError
from chainrule.imaging.fashion import (
    centre_box,
    input_kind,
    preprocess_fashion,
    to_fashion_mnist,
)
from chainrule.imaging.files import (
    FORMATS,
    MAX_PIXELS,
    load_image,
    require_pillow,
    save_png,
)
from chainrule.imaging.mnist import (
    BOX,
    EXTENT,
    FIELD,
    MIN_CONTRAST,
    NOISE,
    as_grey,
    centre_by_mass,
    crop_to_ink,
    fit_to_box,
    ink_on_black,
    preprocess,
    to_mnist,
)
from chainrule.imaging.resample import resize

__all__ = [
    "BOX",
    "EXTENT",
    "FIELD",
    "FORMATS",
    "MAX_PIXELS",
    "MIN_CONTRAST",
    "NOISE",
    "BlankImageError",
    "ImageError",
    "MissingPillowError",
    "as_grey",
    "centre_box",
    "centre_by_mass",
    "crop_to_ink",
    "fit_to_box",
    "ink_on_black",
    "input_kind",
    "load_image",
    "preprocess",
    "preprocess_fashion",
    "require_pillow",
    "resize",
    "save_png",
    "to_fashion_mnist",
    "to_mnist",
]
