// Acknowledgements of alert groups (shown on the silences page): the notifier's firing
// alert groups, each with an "Acknowledge" action (who, comment, duration) that stops its
// repeat notifications, and the active acknowledgements with an "Expire" button.
import { h, fetchJSON, replaceChildren, errorBox, labelBadges, formatISO, parseDuration } from './util.js';

const lsGet = (k) => { try { return localStorage.getItem(k) || ''; } catch { return ''; } };

/** The "Acknowledge" form of one group; `done` is called after a success. */
function ackForm(group, done) {
  const msg = h('div', { class: 'form-msg' });
  const fWho = h('input', { type: 'text', class: 'ack-creator', name: 'createdBy', value: lsGet('strata.silenceCreator'), placeholder: 'who', required: true });
  const fComment = h('input', { type: 'text', class: 'ack-comment', name: 'comment', placeholder: 'comment', maxlength: '1024' });
  const fDuration = h('input', { type: 'text', class: 'ack-duration', name: 'duration', value: '4h', size: '6', required: true });
  const submit = h('button', { type: 'submit', class: 'btn btn-sm btn-primary ack-submit' }, 'Acknowledge');
  const form = h('form', { class: 'ack-form', novalidate: true }, fWho, ' ', fComment, ' for ', fDuration, ' ', submit, msg);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    replaceChildren(msg);
    const dur = parseDuration(fDuration.value);
    if (!dur || dur <= 0) {
      replaceChildren(msg, errorBox('Invalid duration: ' + fDuration.value));
      return;
    }
    if (!fWho.value.trim()) {
      replaceChildren(msg, errorBox('Who is required'));
      return;
    }
    submit.disabled = true;
    try {
      await fetchJSON('/api/v2/acks', {
        method: 'POST',
        body: {
          groupKey: group.groupKey,
          receiver: group.receiver && group.receiver.name,
          createdBy: fWho.value.trim(),
          comment: fComment.value.trim(),
          endsAt: new Date(Date.now() + dur).toISOString(),
        },
      });
      try { localStorage.setItem('strata.silenceCreator', fWho.value.trim()); } catch { /* ignore */ }
      done();
    } catch (e) {
      replaceChildren(msg, errorBox('Error acknowledging: ' + e.message));
      submit.disabled = false;
    }
  });
  return form;
}

/** One alert group row: labels, receiver, alert count, acknowledgement or action. */
function groupRow(group, reload) {
  const ack = group.acknowledgement;
  const action = h('td', { class: 'actions' });
  if (ack) {
    replaceChildren(action, h('span', { class: 'acked' }, `Acknowledged by ${ack.createdBy} until ${formatISO(ack.endsAt)}`));
  } else {
    const btn = h('button', { class: 'btn btn-sm ack-btn', type: 'button' }, 'Acknowledge');
    btn.addEventListener('click', () => replaceChildren(action, ackForm(group, reload)));
    replaceChildren(action, btn);
  }
  return h('tr', { class: 'ack-group-row', 'data-group-key': group.groupKey, 'data-acked': ack ? 'true' : 'false' },
    h('td', { class: 'labels' }, labelBadges(group.labels || {})),
    h('td', { class: 'receiver' }, (group.receiver && group.receiver.name) || ''),
    h('td', { class: 'alert-count' }, String((group.alerts || []).length)),
    action);
}

/** The active acknowledgements, each with "Expire". */
function ackTable(list, reload, note) {
  if (!list.length) return h('div', { class: 'muted empty' }, 'No active acknowledgements.');
  const expire = async (id, btn) => {
    btn.disabled = true;
    try {
      await fetchJSON('/api/v2/ack/' + encodeURIComponent(id), { method: 'DELETE' });
      reload();
    } catch (e) {
      btn.disabled = false;
      note(errorBox('Error expiring acknowledgement: ' + e.message));
    }
  };
  return h('table', { class: 'table acks-table' },
    h('thead', null, h('tr', null, h('th', null, 'Group'), h('th', null, 'Receiver'), h('th', null, 'By'), h('th', null, 'Comment'), h('th', null, 'Until'), h('th', null, ''))),
    h('tbody', null, list.map((a) => h('tr', { class: 'ack-row', 'data-ack-id': a.id },
      h('td', { class: 'group-key mono' }, a.groupKey),
      h('td', { class: 'receiver' }, a.receiver),
      h('td', { class: 'created-by' }, a.createdBy),
      h('td', { class: 'comment' }, a.comment || ''),
      h('td', { class: 'ends-at' }, formatISO(a.endsAt)),
      h('td', { class: 'actions' }, h('button', { class: 'btn btn-sm btn-danger ack-expire-btn', type: 'button', onclick: (ev) => expire(a.id, ev.currentTarget) }, 'Expire'))))));
}

/** The acknowledgements section; `load()` (re)fetches it. Errors stay in the section. */
export function ackSection() {
  const el = h('section', { class: 'card ack-section' });
  async function load() {
    try {
      const [groups, acks] = await Promise.all([fetchJSON('/api/v2/alerts/groups?active=true&silenced=false&inhibited=false'), fetchJSON('/api/v2/acks?active=true')]);
      const msg = h('div', { class: 'form-msg' });
      const gs = Array.isArray(groups) ? groups : [];
      replaceChildren(el,
        h('div', { class: 'card-header' }, h('h2', null, 'Alert groups ', h('span', { class: 'count' }, `(${gs.length})`))),
        gs.length
          ? h('table', { class: 'table ack-groups-table' },
            h('thead', null, h('tr', null, h('th', null, 'Group'), h('th', null, 'Receiver'), h('th', null, 'Alerts'), h('th', null, ''))),
            h('tbody', null, gs.map((g) => groupRow(g, load))))
          : h('div', { class: 'muted empty' }, 'No firing alert groups.'),
        h('div', { class: 'card-header' }, h('h2', null, 'Acknowledgements ', h('span', { class: 'count' }, `(${(acks || []).length})`))),
        ackTable(Array.isArray(acks) ? acks : [], load, (n) => replaceChildren(msg, n)),
        msg);
    } catch (e) {
      replaceChildren(el, errorBox('Error fetching alert groups: ' + e.message));
    }
  }
  return { el, load };
}
