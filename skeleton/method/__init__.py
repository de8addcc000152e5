"""The Skeleton method: prompt tuning (steps 1 and 4), neuron scoring (step 2), structured pruning
and the search (step 3), and condensation. Imports only :mod:`skeleton.core`.
"""
