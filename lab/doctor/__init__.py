"""`safeq-lab doctor`: would primary, gateways and clients connect with these files, judged as their JREs judge?

findings (the model and its output), tools (which keytool and JRE), stores and material (the spec's
files read as the product reads them), certchecks, trust, ocsp, lint (the checks), runner (all of it).
"""
