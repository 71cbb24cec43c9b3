"""``ccssniff report``: charging sessions as one self-contained HTML page (also PDF, PNG, CSV).

``collect`` gathers what the page draws from the decoder's events (bounded in size), ``analyse``
joins it with the decode summary (the authority for every number it has), ``plots`` draws the
figures with matplotlib, ``page`` writes the HTML, ``exports`` the other formats, ``command`` is
the click command.
"""
