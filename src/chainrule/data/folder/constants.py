"""The image-folder loader's constants: limits, formats, cache and split names."""

from __future__ import annotations

#: bump when the decoding or the cache layout changes: old caches are then unused
FORMAT_VERSION = 1
#: the largest image decoded, checked from the header first (8192×8192 pixels)
MAX_PIXELS = 8192 * 8192
#: the largest ``image_size`` side
MAX_SIDE = 1024
#: the file formats tried (Pillow's names); others are "not an image"
FORMATS = ("JPEG", "PNG", "BMP", "GIF", "TIFF", "WEBP", "PPM")
INSTALL_HINT = "reading image folders needs Pillow: pip install 'chainrule[image]'"

#: the names of the validation folder in the train/val/test layout
_VAL_FOLDERS = ("val", "validation")
#: the most bytes copied through memory at once when a split is written
_COPY_BYTES = 1 << 20
#: how many seeded splits of one cached folder are kept (most recently used)
_KEEP_SPLITS = 4
_MANIFEST = "manifest.json"
_FORMAT_NAME = "chainrule image folder cache"
_DEEP_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")
_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")
#: EXIF orientations that turn the image a quarter turn (width and height swap)
_QUARTER_TURNS = (5, 6, 7, 8)
_SHOWN_SKIPS = 5
