"""Algorithms beside MAMT, one sub-package each (config + algorithm, learner, modules).

They share MAMT's core: the joint replay buffer, the JointEnvRunner, the config
checks and the environments.
"""
