"""``genlab zoo``: every family trained within one time budget, under the protocol of the
claims it can decide, then evaluated and compared in one report (:func:`run_zoo`)."""

from genlab.zoo.budget import Slot, allocate, hand_on
from genlab.zoo.entries import BINARISED, GREY, ZOO, ZooEntry, eval_samples, parse_budget, select
from genlab.zoo.run import ZooInterrupted, run_zoo, zoo_folder

__all__ = [
    "BINARISED",
    "GREY",
    "ZOO",
    "Slot",
    "ZooEntry",
    "ZooInterrupted",
    "allocate",
    "eval_samples",
    "hand_on",
    "parse_budget",
    "run_zoo",
    "select",
    "zoo_folder",
]
