"""Result files, tables and plots shared by every technique."""
