"""How scan results leave the library: JSON, images and the console. Formats render; they never compute."""
