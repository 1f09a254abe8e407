"""Field encryption, blind indexes, masking, passwords, tokens and login throttling."""
