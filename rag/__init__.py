"""The application: service layer, command line, web glue. Imports every floor below it."""
