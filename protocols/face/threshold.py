"""The match threshold, apart from the array code: a gateway's file names it without numpy."""

# Cosine at or above which two embeddings are the same person: chosen between the measured
# genuine (0.79-0.80) and impostor (<= 0.02; BRIEF saw up to 0.53) scores, see docs/face.md.
DEFAULT_THRESHOLD = 0.60
