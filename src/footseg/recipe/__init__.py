"""Recipes: how a shipped model is made from nothing, as a TOML file that ``footseg recipe run`` executes.

``schema`` reads and checks a recipe file, ``runner`` renders, trains, prunes and exports its stages into one folder
(resuming where it stopped), ``card`` writes the result's MODEL_CARD.md, ``environment`` records what ran them.
"""
