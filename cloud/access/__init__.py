"""Door access: who may open which door (rights from the records), compiled per gateway."""
