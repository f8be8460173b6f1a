"""Everything that talks to AWS: clients, the Lambda handler, alarms, remote checks, Route 53.

boto3 is imported lazily, inside the functions that need it.
"""
