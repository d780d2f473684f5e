"""From a run to landmarks on new images: files, frame folders, several faces per image."""
