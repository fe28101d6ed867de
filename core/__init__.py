"""The ground floor: settings, result types, errors and token counting. Imports nothing of the project."""
