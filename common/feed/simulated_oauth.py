"""What the simulator's token endpoint answers for a refresh token it never issued.

Said by the simulator (`common/simulator/tokens.py`) and understood by the
client (`common/feed/schwab_client.py`), which logs in to the simulator
again on it, as a person would. Kept here, in feed, because the simulator
builds on feed and never the reverse.
"""

NOT_ISSUED = "refresh token not issued by this simulator"
