"""Marts: industry and member aggregates built from the accepted rows of the lake."""
