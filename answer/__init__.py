"""From ranked chunks to a checked answer: context selection, answerers, the citation check."""
