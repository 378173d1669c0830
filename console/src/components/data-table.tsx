import { Table, UnstyledButton, VisuallyHidden } from '@mantine/core';
import { createColumnHelper, tableFeatures, useTable } from '@tanstack/react-table';
import { useMemo, type ReactNode } from 'react';
import { formatValue } from '../lib/diff';

const features = tableFeatures({});
type Row = Record<string, unknown>;
const helper = createColumnHelper<typeof features, Row>();

export interface Column {
  id: string;
  header: string;
  render?: (row: Row) => ReactNode;
  sortable?: boolean;
}

/**
 * A table built on TanStack Table's row model, rendered with Mantine's table. Sorting is the
 * server's (the caller passes the state and a callback): pages are fetched sorted, never sorted
 * in the browser over a partial list.
 */
export function DataTable(props: {
  caption: string;
  columns: Column[];
  rows: Row[];
  rowKey?: (row: Row) => string;
  sort?: { field: string; desc: boolean };
  onSort?: (field: string) => void;
}): ReactNode {
  const { columns, rows, sort, onSort } = props;
  const defs = useMemo(
    () =>
      columns.map((c) =>
        helper.accessor((r: Row) => r[c.id], {
          id: c.id,
          header: c.header,
          cell: (ctx) => (c.render ? c.render(ctx.row.original) : formatValue(ctx.getValue())),
        }),
      ),
    [columns],
  );
  const table = useTable({ features, columns: defs, data: rows, getRowId: props.rowKey ? (r: Row) => props.rowKey!(r) : undefined });
  const byId = new Map(columns.map((c) => [c.id, c]));
  return (
    <Table.ScrollContainer minWidth={500}>
      <Table striped highlightOnHover withTableBorder>
        <VisuallyHidden component="caption">{props.caption}</VisuallyHidden>
        <Table.Thead>
          {table.getHeaderGroups().map((g) => (
            <Table.Tr key={g.id}>
              {g.headers.map((h) => {
                const col = byId.get(h.column.id);
                const active = sort?.field === h.column.id;
                const ariaSort = active ? (sort!.desc ? 'descending' : 'ascending') : col?.sortable ? 'none' : undefined;
                return (
                  <Table.Th key={h.id} scope="col" aria-sort={ariaSort}>
                    {col?.sortable && onSort ? (
                      <UnstyledButton onClick={() => onSort(h.column.id)} fw={700} fz="sm">
                        {col.header}
                        <span aria-hidden>{active ? (sort!.desc ? ' ▼' : ' ▲') : ' ↕'}</span>
                        <VisuallyHidden>{active ? `, sorted ${sort!.desc ? 'descending' : 'ascending'}` : ', sortable'}</VisuallyHidden>
                      </UnstyledButton>
                    ) : (
                      <table.FlexRender header={h} />
                    )}
                  </Table.Th>
                );
              })}
            </Table.Tr>
          ))}
        </Table.Thead>
        <Table.Tbody>
          {table.getRowModel().rows.map((r) => (
            <Table.Tr key={r.id}>
              {r.getAllCells().map((cell) => (
                <Table.Td key={cell.id}>
                  <table.FlexRender cell={cell} />
                </Table.Td>
              ))}
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
    </Table.ScrollContainer>
  );
}
