"""Data: image I/O, dataset readers (KADID-10k, TID, CSIQ, BAPPS, RAID) and correlation statistics."""
from .io import IMAGE_EXTENSIONS, list_images, load_image, load_image_array

__all__ = ["load_image", "load_image_array", "list_images", "IMAGE_EXTENSIONS"]
