"""aevae: autoencoders and variational autoencoders on small colour images."""

__version__ = "0.1.0"
