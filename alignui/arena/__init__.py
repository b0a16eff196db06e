"""The arena and its statistics: blind battles and seating, automatic judges, Bradley-Terry ratings,
win-rate statistics and verdicts, battle files in Chatbot Arena's form, inter-annotator agreement.
Modules: battle, judges, bradley_terry, stats, battle_files, agreement.
"""
