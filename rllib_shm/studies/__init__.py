"""Searches (studies): the study file and its search space, the Tune trainable, ``Tuner`` +
``OptunaSearch``, MLflow parent/child runs and the leaderboard."""
