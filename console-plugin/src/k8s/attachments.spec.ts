import { attachment } from '../test/objects';
import { attachmentRows, slots } from './attachments';

const now = new Date('2026-12-07T12:00:00Z');

describe('attachmentRows', () => {
  it("shows the VM's attachments with counters, oldest first", () => {
    const rows = attachmentRows(
      [
        attachment('b', 'vm1', {
          phase: 'Attached',
          device: 'aaa1',
          bytesToVM: 1536,
          bytesFromVM: 10,
          reconnects: 2,
          lastError: 'stream reset',
          attachedSince: '2026-12-07T11:58:00Z',
        }),
        attachment('a', 'vm1', {}, { creationTimestamp: '2026-12-07T10:00:00Z' }),
        attachment('c', 'vm2', { phase: 'Attached' }),
      ],
      'vm1',
      now,
    );
    expect(rows.map((r) => r.name)).toEqual(['a', 'b']);
    expect(rows[0].phase).toBe('Pending');
    expect(rows[1]).toMatchObject({
      toVM: '1.5 KiB',
      fromVM: '10 B',
      reconnects: 2,
      lastError: 'stream reset',
      sinceAge: '2m',
      wants: 'serial=AAA1',
    });
  });

  it('shows an attachment being deleted as Detaching', () => {
    const [row] = attachmentRows(
      [
        attachment(
          'a',
          'vm1',
          { phase: 'Attached' },
          { deletionTimestamp: '2026-12-07T11:59:00Z' },
        ),
      ],
      'vm1',
      now,
    );
    expect(row.shownPhase).toBe('Detaching');
  });
});

describe('slots', () => {
  it('fills slots with the attachments holding a device, then free ones', () => {
    const rows = attachmentRows(
      [
        attachment('waiting', 'vm1', { phase: 'WaitingForDevice' }),
        attachment('second', 'vm1', { phase: 'Connecting', attachedSince: '2026-12-07T11:30:00Z' }),
        attachment('first', 'vm1', { phase: 'Attached', attachedSince: '2026-12-07T11:00:00Z' }),
        attachment('gone', 'vm1', { phase: 'Attached' }, { deletionTimestamp: 'x' }),
      ],
      'vm1',
      now,
    );
    expect(slots(rows).map((s) => s.attachment?.name ?? 'free')).toEqual([
      'first',
      'second',
      'free',
      'free',
    ]);
  });
});
