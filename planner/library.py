"""The exercise library: every exercise the planner may prescribe, as a table a coach can read.

Each row names the Garmin Connect category/exerciseName (validated against garminconnect's
catalogue and the FIT profile by the tests and before rendering), whether it is done per side or
with both legs, whether it is timed, the equipment it needs and the substitutes (in order) used
when that equipment is missing. Category-only rows (``PLYO/PLYO``) carry their own display name,
because Garmin has no exercise of that name (e.g. bounding).
"""

from __future__ import annotations

from dataclasses import dataclass

from .models import Equipment, ExerciseRef


@dataclass(frozen=True)
class Exercise:
    key: str
    display: str
    category: str
    name: str
    per_side: bool
    timed: bool = False
    equipment: tuple[Equipment, ...] = ()
    substitutes: tuple[str, ...] = ()
    cue: str = ""

    def ref(self) -> ExerciseRef:
        return ExerciseRef(self.key, self.category, self.name, self.display)


def _x(key, display, garmin, per_side, timed=False, equipment=(), substitutes=(), cue=""):
    category, name = garmin.split("/")
    return Exercise(key, display, category, name, per_side, timed, equipment, substitutes, cue)


# key, display name, Garmin CATEGORY/EXERCISE_NAME, per side, timed, equipment, substitutes, cue
EXERCISES: tuple[Exercise, ...] = (
    # warm-up (seed 000: hip circles, ankle dorsiflexion, thoracic rotation, leg swings)
    _x("hip_circles", "Hip circles", "HIP_STABILITY/HIP_CIRCLES", False, cue="each side"),
    _x("ankle_dorsiflexion_band", "Ankle dorsiflexion with band",
       "WARM_UP/ANKLE_DORSIFLEXION_WITH_BAND", False, equipment=("band",),
       substitutes=("ankle_circles",), cue="each side"),
    _x("ankle_circles", "Ankle circles", "WARM_UP/ANKLE_CIRCLES", False, cue="each side"),
    _x("thoracic_rotation", "Thoracic rotation", "WARM_UP/THORACIC_ROTATION", False,
       cue="each side"),
    _x("leg_swings", "Leg swings (front-back and side-to-side)",
       "WARM_UP/FORWARD_AND_BACKWARD_LEG_SWINGS", False, cue="each leg"),
    # cool-down
    _x("calf_stretch", "Calf stretch", "WARM_UP/STRETCH_CALF", False, True, cue="each side"),
    _x("hip_flexor_stretch", "Lunging hip-flexor stretch", "WARM_UP/STRETCH_LUNGING_HIP_FLEXOR",
       False, True, cue="each side"),
    _x("hamstring_stretch", "Hamstring stretch", "WARM_UP/STRETCH_HAMSTRING", False, True,
       cue="each side"),
    # phase 1: control
    _x("single_leg_balance", "Single-leg balance hold", "HIP_STABILITY/HIP_STABILITY", True, True,
       cue="soft knee, level pelvis"),
    _x("partial_single_leg_squat", "Assisted partial single-leg squat",
       "SQUAT/PARTIAL_SINGLE_LEG_SQUAT", True, cue="hold a rail; knee over second toe"),
    _x("one_legged_squat", "Single-leg squat", "SQUAT/ONE_LEGGED_SQUAT", True,
       cue="full range you can control"),
    _x("reverse_lunge", "Reverse lunge", "LUNGE/LUNGE", True, cue="step back, torso tall"),
    _x("single_leg_hip_raise", "Single-leg glute bridge", "HIP_RAISE/SINGLE_LEG_HIP_RAISE", True,
       cue="pelvis level at the top"),
    _x("side_plank", "Side plank", "PLANK/SIDE_PLANK", True, True, cue="side = the side down"),
    _x("single_leg_calf_raise", "Single-leg calf raise",
       "CALF_RAISE/SINGLE_LEG_STANDING_CALF_RAISE", True, cue="full range, slow down"),
    _x("clamshell", "Clamshell with band", "BANDED_EXERCISES/CLAM_SHELLS", True,
       equipment=("band",), substitutes=("side_lying_leg_raise",), cue="side = the working hip"),
    _x("side_lying_leg_raise", "Side-lying leg raise", "HIP_STABILITY/SIDE_LYING_LEG_RAISE", True,
       cue="side = the working hip"),
    # phase 2: strength
    _x("single_leg_rdl", "Single-leg Romanian deadlift with dumbbell",
       "DEADLIFT/SINGLE_LEG_ROMANIAN_DEADLIFT_WITH_DUMBBELL", True, equipment=("dumbbells",),
       substitutes=("staggered_stance_hinge",), cue="side = the standing leg"),
    _x("staggered_stance_hinge", "Staggered-stance hinge (bodyweight)",
       "LEG_CURL/STAGGERED_STANCE_GOOD_MORNING", True, cue="side = the front leg"),
    _x("weighted_step_up", "Step-up to knee drive with dumbbells", "SQUAT/WEIGHTED_STEP_UP", True,
       equipment=("box_bench", "dumbbells"), substitutes=("step_up", "reverse_lunge"),
       cue="drive the knee up at the top"),
    _x("step_up", "Step-up to knee drive", "SQUAT/STEP_UP", True, equipment=("box_bench",),
       substitutes=("reverse_lunge",), cue="drive the knee up at the top"),
    _x("box_pistol", "Box pistol (single-leg bench squat)", "SQUAT/SINGLE_LEG_BENCH_SQUAT", True,
       equipment=("box_bench",), substitutes=("partial_single_leg_squat",),
       cue="sit back to the box, stand on one leg"),
    _x("pistol_squat", "Pistol squat", "SQUAT/PISTOL_SQUAT", True, cue="hold a post if needed"),
    _x("bulgarian_split_squat", "Bulgarian split squat with dumbbells",
       "LUNGE/DUMBBELL_BULGARIAN_SPLIT_SQUAT", True, equipment=("box_bench", "dumbbells"),
       substitutes=("bulgarian_split_squat_bw", "dumbbell_split_squat", "reverse_lunge"),
       cue="side = the front leg"),
    _x("bulgarian_split_squat_bw", "Bulgarian split squat (bodyweight, arms overhead)",
       "LUNGE/OVERHEAD_BULGARIAN_SPLIT_SQUAT", True, equipment=("box_bench",),
       substitutes=("reverse_lunge",), cue="side = the front leg"),
    _x("dumbbell_split_squat", "Split squat with dumbbells", "SQUAT/DUMBBELL_SPLIT_SQUAT", True,
       equipment=("dumbbells",), substitutes=("reverse_lunge",), cue="side = the front leg"),
    _x("weighted_calf_raise", "Weighted single-leg calf raise",
       "CALF_RAISE/SINGLE_LEG_STANDING_DUMBBELL_CALF_RAISE", True, equipment=("dumbbells",),
       substitutes=("single_leg_calf_raise",)),
    _x("nordic_lowering", "Nordic hamstring lowering", "LEG_CURL/LEG_CURL", False,
       equipment=("box_bench",), substitutes=("sliding_leg_curl",),
       cue="heels anchored under a bench; lower as slowly as you can"),
    _x("sliding_leg_curl", "Single-leg sliding leg curl", "LEG_CURL/SINGLE_LEG_SLIDING_LEG_CURL",
       True, cue="heel on a towel on a smooth floor"),
    # phase 3: power
    _x("single_leg_hops", "Single-leg hops", "PLYO/PLYO", True,
       cue="short contacts, quiet landing"),
    _x("lateral_leap_and_hop", "Lateral leap and hop", "PLYO/LATERAL_LEAP_AND_HOP", True,
       cue="side = the landing leg; stick each landing"),
    _x("split_jumps", "Split jumps", "PLYO/ALTERNATING_JUMP_LUNGE", False,
       cue="count contacts per leg"),
    _x("single_leg_drop_jump", "Low single-leg drop jump", "PLYO/DEPTH_JUMP", True,
       equipment=("box_bench",), substitutes=("single_leg_hops",),
       cue="single leg: step off a low box (20 cm / 8 in), rebound at once"),
    _x("bounding", "Bounding", "PLYO/PLYO", False, cue="long, springy strides; count per leg"),
    # accessory for the focus side (seed 000: glute bridges, clamshells, tibialis raises)
    _x("tibialis_raise", "Tibialis raise (back to a wall)", "CALF_RAISE/CALF_RAISE", True,
       cue="lift the toes, heels down"),
    # foot & ankle module (seed 001)
    _x("short_foot_hold", "Short-foot hold", "CALF_RAISE/CALF_RAISE", True, True,
       cue="shorten the arch without curling the toes"),
    _x("toe_curls", "Seated toe curls", "CALF_RAISE/CALF_RAISE", True,
       cue="towel under the foot, pull it in with the toes"),
    # asymmetric-pattern (top-down) module (seed 002)
    _x("rockback_breathing", "Left sucker-punch rockback breathing", "WARM_UP/QUADRUPED_ROCKING",
       False, cue="breathe into the right front ribs and left back ribs; 5 breaths"),
    _x("hip_shift_90_90", "90-90 with left hip shift", "WARM_UP/STRETCH_90_90", False,
       cue="shift the pelvis left, subtly; 5 breaths"),
    _x("split_squat_rotation", "Split squat with rotation", "LUNGE/DUMBBELL_LUNGE_AND_ROTATION",
       True, equipment=("dumbbells",), substitutes=("split_squat_rotation_bw",),
       cue="turn the pelvis back to the left"),
    _x("split_squat_rotation_bw", "Split squat with rotation (bodyweight)", "LUNGE/LUNGE", True,
       cue="turn the pelvis back to the left"),
    _x("staggered_hinge_asym_arms", "Staggered-stance hinge with asymmetric arms",
       "LEG_CURL/STAGGERED_STANCE_GOOD_MORNING", True, cue="ribcage, hips and feet together"),
)  # fmt: skip

BY_KEY: dict[str, Exercise] = {e.key: e for e in EXERCISES}


def exercise(key: str) -> Exercise:
    try:
        return BY_KEY[key]
    except KeyError:
        raise KeyError(f"unknown exercise key {key!r}; known: {sorted(BY_KEY)}") from None
