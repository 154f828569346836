"""Every limit on what a load may read, decode and hold, in one place.

The loaders read these at call time (`limits.MAX_IMAGES`), so a test or a server that changes
one changes it for every loader."""

MIN_SIZE = 32
MAX_SIZE = 128
MAX_IMAGES = 10_000
MAX_IMAGE_PIXELS = 4096 * 4096  # per image; Pillow's own bomb limit is about 89 M
MAX_ZIP_MEMBERS = 20_000  # also the file-count cap for folders
MAX_ZIP_TOTAL_BYTES = 1_000_000_000  # uncompressed, also for folders and arrays
MAX_MEMBER_BYTES = 50_000_000
# Pixels decoded per load, summed over images: what decoding costs in CPU time (about 40 M
# pixels/s for PNG on one core here, so ~10 s). Counted at the size an image is decoded at:
# its own size, or for JPEG the reduced size draft() decodes at (>= the requested size).
# 10,000 images of 128x128 are 164 M; 24 images of 4096x4096 already exceed it.
MAX_DECODED_PIXELS = 400_000_000
MAX_IDS = 1_000
MAX_LABEL_CHARS = 200  # a label given as a name (a string array)
MAX_SHOWN_NAME = 80  # characters of a file, zip entry or folder name that a message shows

# What a file's structure makes decoding cost beyond its pixels, checked from its bytes before
# Pillow reads it: each scan of a progressive JPEG is a pass over the whole image (10,000 scans
# took 22.7 s), Pillow reads every PNG chunk before the pixels (millions of empty ones: 83 s),
# and all metadata (39 MB of JPEG comments: 7.7 s). Real photos have about 10 scans, a few PNG
# chunks per 4 KB of pixel data, and far less metadata than the limit.
MAX_JPEG_SCANS = 100
MAX_METADATA_BYTES = 2_000_000
PNG_CHUNK_BYTES = 4096  # the fewest bytes per chunk, on average, beyond the first 1,000 chunks
