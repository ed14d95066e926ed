"Shared pytest set-up: offline hub, and the shared data folder when it is there."
import os
from pathlib import Path
import pytest

os.environ.setdefault('HF_HUB_OFFLINE', '1')
os.environ.setdefault('TRANSFORMERS_OFFLINE', '1')
_default = Path(__file__).resolve().parents[2]/'shared/data'
if 'RELEX_DATA' not in os.environ and _default.exists(): os.environ['RELEX_DATA'] = str(_default)


@pytest.fixture
def shared_data():
    "The RELEX_DATA folder with the official release, or skip the test saying why."
    p = os.environ.get('RELEX_DATA')
    if not p or not (Path(p)/'semeval2010_task8/TRAIN_FILE.TXT').exists():
        why = 'RELEX_DATA does not point at the SemEval-2010 Task 8 release'
        if os.environ.get('CI', '').lower() == 'true': pytest.fail(f'{why} (CI has the shared data: a missing RELEX_DATA is a failure there)')
        pytest.skip(why)
    return Path(p)
