"""Golden tests: the paper's Tables 2 and 3, cell by cell (tolerance: the printed rounding)."""

import pytest

from scaling import tables


def _mismatches(cells):
    return {(c.row, c.column) for c in cells if not c.matches}


def test_parse_printed():
    assert tables.parse_printed("27.4B") == (pytest.approx(2.74e10), pytest.approx(5e7))
    assert tables.parse_printed("2.64e20") == (pytest.approx(2.64e20), pytest.approx(5e17))
    assert tables.parse_printed("9.1%") == (pytest.approx(0.091), pytest.approx(5e-4))


def test_table2_every_cell_within_rounding_or_a_documented_misprint():
    cells = tables.table2()
    assert len(cells) == 40
    assert _mismatches(cells) == tables.KNOWN_MISPRINTS["table2"]
    # the misprints are small except the unit slip (6.33M for 633M)
    for c in cells:
        if not c.matches and c.column != "optimal params":
            assert abs(c.rel_diff) < 0.012, c


def test_table3_with_the_cost_model_the_printed_cells_imply():
    cells = tables.table3_calibrated()
    assert _mismatches(cells) == tables.KNOWN_MISPRINTS["table3_calibrated"]
    unit_slip = next(c for c in cells if (c.row, c.column) == ("3.51B", "optimal params"))
    assert unit_slip.ours == pytest.approx(unit_slip.paper / 100, rel=0.005)  # 430B printed for 4.30B


def test_table3_with_the_stated_settings_is_off_by_the_documented_amount():
    # docs/paper-tables.md: the stated settings (A100-40 INT8 $1.10/h, MFU 50%/1%) give costs
    # 9-10.4% above the printed Chinchilla costs; no natural setting closes the gap.
    cells = [c for c in tables.table3() if c.column == "chinchilla cost"]
    for c in cells:
        assert 0.089 < c.rel_diff < 0.105, c


def test_table2_is_not_reproduced_by_wrong_coefficients():
    # the golden comparison can fail: the rounded Chinchilla exponents (0.34, 0.28) miss many cells
    from scaling.coefficients import LawCoefficients

    rounded = LawCoefficients(A=406.4, B=410.7, E=1.69, alpha=0.34, beta=0.28)
    assert len(_mismatches(tables.table2(rounded))) > 15
