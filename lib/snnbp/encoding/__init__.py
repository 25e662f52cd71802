"""Input encodings: rate and latency codes, events to rasters, audio and image front ends."""
