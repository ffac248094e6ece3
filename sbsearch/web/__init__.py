"""The web face: `sbsearch serve`'s search page and JSON API (server.py), and who may ask
(auth.py). Like the terminal face (sbsearch.cli), it only calls the use cases of sbsearch.app and
renders what they return."""
