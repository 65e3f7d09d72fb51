"""Image datasets: reading user folders, preparing training sets, built-in demo sets."""
