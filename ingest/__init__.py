"""Reading files, chunking them and storing the chunks with their vectors."""
