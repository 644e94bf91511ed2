"""StatesGroups of the multi-step dialogs, one per dialog, named for it."""
