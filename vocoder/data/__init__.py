"""Corpora (ARCTIC layout, download, splits), feature extraction and cache, torch datasets."""

from vocoder.data._settings import FeatureSettings

__all__ = ["FeatureSettings"]
