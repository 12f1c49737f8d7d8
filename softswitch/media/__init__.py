"""Media: anchored RTP, whisper, DTMF and prompts (issue #4).  Nothing here yet."""
