"""Quality settings that are not tenant data."""

ANALYSE_JOB_KIND = "quality.analyse"
ANALYSE_TIME_LIMIT_S = 900
METER = "quality.analyses"
MAX_UPLOAD_BYTES = 512 * 2**20
MAX_ERRORS = 200  # problems named in a rejection (all are counted)
MAX_ROWS_PER_REQUEST = 5_000_000
EARLIEST_TIMESTAMP_YEAR = 1990
MAX_FUTURE_SKEW_S = 300
MIN_LABELLED_CASES = 5  # labelled cases (failed units, or line analyses) before a supervised ranking is trained
