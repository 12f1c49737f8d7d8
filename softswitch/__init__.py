"""softswitch: a SIP softswitch for call tracking, in pure Python."""

__version__ = "0.1.0"
