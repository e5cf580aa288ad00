import datetime as dt

from retrain_contract.api.spec import ScheduleSpec
from retrain_operator.core.schedule import due_tick, latest_tick, next_tick

UTC = dt.UTC
NIGHTLY_BERLIN = ScheduleSpec(cron="0 3 * * *", time_zone="Europe/Berlin")
CREATED = dt.datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def at(day: int, hour: int, minute: int = 0, second: int = 0) -> dt.datetime:
    return dt.datetime(2026, 11, day, hour, minute, second, tzinfo=UTC)


def test_next_tick_reads_the_cron_in_the_schedules_time_zone():
    # 03:00 in Berlin is 02:00 UTC in November (CET, UTC+1).
    assert next_tick(NIGHTLY_BERLIN, at(20, 12)) == at(21, 2)


def test_next_tick_follows_daylight_saving_time():
    summer = dt.datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
    assert next_tick(NIGHTLY_BERLIN, summer) == dt.datetime(2026, 7, 2, 1, 0, tzinfo=UTC)


def test_latest_tick_includes_a_tick_exactly_now():
    assert latest_tick(NIGHTLY_BERLIN, at(21, 2)) == at(21, 2)
    assert latest_tick(NIGHTLY_BERLIN, at(21, 1, 59, 59)) == at(20, 2)


def test_nothing_is_due_before_the_first_tick_after_creation():
    assert due_tick(NIGHTLY_BERLIN, None, CREATED, at(21, 1, 59)) is None


def test_the_tick_is_due_once_it_has_passed():
    assert due_tick(NIGHTLY_BERLIN, None, CREATED, at(21, 2, 0, 1)) == at(21, 2)


def test_a_consumed_tick_is_never_due_again():
    assert due_tick(NIGHTLY_BERLIN, at(21, 2), CREATED, at(21, 9)) is None


def test_missed_ticks_collapse_into_one_run_of_the_latest():
    # The operator was down for three nights: one run, for the latest tick, not three.
    assert due_tick(NIGHTLY_BERLIN, at(21, 2), CREATED, at(24, 7)) == at(24, 2)


def test_ticks_before_the_policy_existed_do_not_count():
    created_late = at(21, 2, 30)
    assert due_tick(NIGHTLY_BERLIN, None, created_late, at(21, 12)) is None


def test_a_tick_older_than_the_starting_deadline_is_dropped():
    strict = ScheduleSpec(cron="0 3 * * *", time_zone="Europe/Berlin", starting_deadline=dt.timedelta(minutes=30))
    assert due_tick(strict, None, CREATED, at(21, 2, 20)) == at(21, 2)
    assert due_tick(strict, None, CREATED, at(21, 2, 31)) is None
