"""Files: images, atomic writes and path checks, the run record, the loss plot, the compilation cache."""
