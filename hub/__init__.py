"""hallhub: a real-time operations hub for government service halls."""
