"""Reference forms of the thermal collision operator, for the tests only.

``kinetics._collision._ThermalBilinear`` evaluates ``apply`` and ``jacobian`` by its
fast path (whole cells by two index bounds per support, the <= 4 cut nodes per row
by gathers). The forms here evaluate every covered hat fraction W_ij with
``_elements`` instead: slower, but a direct transcription of the discretization
(``kinetics._collision`` module docstring), so that the fast path can be checked
against them to rounding.
"""

import jax.numpy as jnp


def _row_blocks(bil, fn, n):
    """fn(rows (B, 1) dict, n_rows (B, 1)) -> (B, ...) over blocks of rows of ``bil.row``."""
    rows = dict(bil.row)
    rows["__n"] = n
    return bil._rows_map(lambda r: fn(r, r.pop("__n")), rows)


def _brackets(m_down, m_up, m_pair, n_s, n_p, ni, nj):
    # down N (n'-n) - n (1-n'); up N (n'-n) + n' (1-n); pair N (1-n-n') - n n'
    flow = n_s * (nj - ni)
    return (
        m_down * (flow - ni * (1.0 - nj))
        + m_up * (flow + nj * (1.0 - ni))
        + m_pair * (n_p * (1.0 - ni - nj) - ni * nj)
    )


def apply_unblocked(bil, n):
    """I[n] with every fraction evaluated and all N x N matrices at once [rate]."""
    m_down, m_up, m_pair, n_s, n_p = bil._matrix_elements()
    terms = _brackets(m_down, m_up, m_pair, n_s, n_p, n[:, None], n[None, :])
    return 2.0 * jnp.sum(terms, axis=1) + bil._diag(n)


def apply_blocked(bil, n):
    """``apply_unblocked`` in row blocks (the same terms, blocked like the fast path)."""
    c = {k: v[None, :] for k, v in bil.col.items()}
    nj = n[None, :]

    def block(r, ni):
        m_down, m_up, m_pair, n_s, n_p = bil._elements(r, c)
        return jnp.sum(_brackets(m_down, m_up, m_pair, n_s, n_p, ni, nj), axis=1)

    return 2.0 * _row_blocks(bil, block, n) + bil._diag(n)


def jacobian_blocked(bil, n):
    """dI/dn without the diagonal-limit term, every fraction evaluated, in row blocks."""
    c = {k: v[None, :] for k, v in bil.col.items()}
    nj = n[None, :]
    nn = n.shape[0]

    def block(r, ni):
        m_down, m_up, m_pair, n_s, n_p = bil._elements(r, c)
        jac = m_down * (n_s + ni) + m_up * (n_s + 1.0 - ni) - m_pair * (n_p + ni)
        d = jnp.sum(m_down * (n_s + 1.0 - nj) + m_up * (n_s + nj) + m_pair * (n_p + nj), axis=1)
        # the diagonal's row sum goes on the diagonal entry of each row of the block
        on_diag = r["i"] == jnp.arange(nn, dtype=jnp.float64)[None, :]
        return 2.0 * (jac - jnp.where(on_diag, d[:, None], 0.0))

    return _row_blocks(bil, block, n)
