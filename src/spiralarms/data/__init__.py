"""Images, synthetic galaxies, transforms, splits and datasets."""
