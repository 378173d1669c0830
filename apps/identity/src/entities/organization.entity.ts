import { Column, CreateDateColumn, Entity, PrimaryColumn } from 'typeorm';

@Entity({ name: 'organization' })
export class OrganizationEntity {
  @PrimaryColumn({ type: 'uuid' })
  id!: string;

  @Column({ type: 'varchar', length: 200 })
  name!: string;

  /** Bumped by every change that can alter a decision in this org (R10). */
  @Column({ name: 'policy_version', type: 'bigint', default: 1, transformer: { to: (v: number) => v, from: (v: string) => Number(v) } })
  policyVersion!: number;

  /** Sequence of the directory events of this org (DirectoryChanged.seq). */
  @Column({ name: 'directory_seq', type: 'bigint', default: 0, transformer: { to: (v: number) => v, from: (v: string) => Number(v) } })
  directorySeq!: number;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;
}
