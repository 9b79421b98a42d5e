"""The web console: pages for people, over the same services as every other door (pages.py), and
who is signed in, in cookies, with the CSRF tokens of their forms (session.py)."""
