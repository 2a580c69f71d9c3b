"""Real born-digital pages with labels read from the PDFs themselves (Debian's TeX Live documentation)."""
