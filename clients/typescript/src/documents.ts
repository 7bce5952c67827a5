// The client's GraphQL documents. Codegen reads this file (the `/* GraphQL */` strings)
// and fails the build when one does not validate against ../../schema.graphql; the
// operation types in ./generated/graphql.ts are named after these operations.
// Fragments are sent with the operations that spread them (see `withFragments`).

export const USER_FIELDS = /* GraphQL */ `
  fragment UserFields on User {
    id
    userId
    data
    createdAt
    updatedAt
  }
`;

export const BLOB_FIELDS = /* GraphQL */ `
  fragment BlobFields on Blob {
    id
    type
    createdAt
  }
`;

export const FLUSH_FIELDS = /* GraphQL */ `
  fragment FlushFields on Flush {
    id
    trigger
    status
    itemCount
    llmCalls
    inputTokens
    outputTokens
    droppedItems
    embeddingTexts
    embeddingTokens
    error
    eventId
    startedAt
    finishedAt
  }
`;

export const ENTRY_FIELDS = /* GraphQL */ `
  fragment EntryFields on ProfileEntry {
    id
    topic
    subTopic
    content
    source
    sourceBlobIds
    sourceEventId
    createdAt
    updatedAt
    lastMentionedAt
    history {
      content
      action
      source
      createdAt
    }
  }
`;

export const EVENT_FIELDS = /* GraphQL */ `
  fragment EventFields on Event {
    id
    summary
    tags {
      tag
      value
    }
    happenedFrom
    happenedTo
    createdAt
    profileDelta {
      action
      topic
      subTopic
      content
      previous
    }
  }
`;

export const CHANGE_FIELDS = /* GraphQL */ `
  fragment ChangeFields on ProfileChange {
    cursor
    kind
    entryId
    topic
    subTopic
    oldValue
    newValue
    source
    flushId
    eventId
    error
    createdAt
  }
`;

// The error members of a result union: every one implements Error; InvalidInput names a field.
export const ERROR_FIELDS = /* GraphQL */ `
  fragment ErrorFields on Error {
    __typename
    code
    message
    ... on InvalidInput {
      field
    }
  }
`;

export const CREATE_USER = /* GraphQL */ `
  mutation CreateUser($input: CreateUserInput!) {
    createUser(input: $input) {
      __typename
      ... on CreateUserPayload {
        user {
          ...UserFields
        }
      }
      ...ErrorFields
    }
  }
`;

export const GET_USER = /* GraphQL */ `
  query GetUser($id: ID!) {
    user(userId: $id) {
      ...UserFields
    }
  }
`;

export const UPDATE_USER = /* GraphQL */ `
  mutation UpdateUser($input: UpdateUserInput!) {
    updateUser(input: $input) {
      __typename
      ... on UpdateUserPayload {
        user {
          ...UserFields
        }
      }
      ...ErrorFields
    }
  }
`;

export const DELETE_USER = /* GraphQL */ `
  mutation DeleteUser($id: ID!) {
    deleteUser(input: {userId: $id}) {
      __typename
      ... on DeleteUserPayload {
        deletedUserId
      }
      ...ErrorFields
    }
  }
`;

export const INSERT_BLOB = /* GraphQL */ `
  mutation InsertBlob($input: InsertBlobInput!) {
    insertBlob(input: $input) {
      __typename
      ... on InsertBlobPayload {
        blob {
          ...BlobFields
        }
      }
      ...ErrorFields
    }
  }
`;

export const FLUSH_BUFFER = /* GraphQL */ `
  mutation FlushBuffer($userId: ID!, $wait: Boolean!) {
    flushBuffer(input: {userId: $userId, wait: $wait}) {
      __typename
      ... on FlushBufferPayload {
        outcome
        flush {
          ...FlushFields
        }
      }
      ...ErrorFields
    }
  }
`;

export const PROFILE = /* GraphQL */ `
  query Profile($userId: ID!, $topics: [String!], $topk: Int, $maxTokens: Int) {
    user(userId: $userId) {
      profile(topics: $topics, topk: $topk, maxTokens: $maxTokens) {
        ...EntryFields
      }
    }
  }
`;

export const CONTEXT = /* GraphQL */ `
  query Context(
    $userId: ID!
    $maxTokens: Int!
    $preferTopics: [String!]
    $onlyTopics: [String!]
    $profileEventRatio: Float!
    $includeBuffer: Boolean!
  ) {
    user(userId: $userId) {
      context(
        maxTokens: $maxTokens
        preferTopics: $preferTopics
        onlyTopics: $onlyTopics
        profileEventRatio: $profileEventRatio
        includeBuffer: $includeBuffer
      ) {
        text
        tokens
        profileEntries
        events
      }
    }
  }
`;

export const ADD_PROFILE_ENTRY = /* GraphQL */ `
  mutation AddProfileEntry($input: AddProfileEntryInput!) {
    addProfileEntry(input: $input) {
      __typename
      ... on AddProfileEntryPayload {
        entry {
          ...EntryFields
        }
      }
      ...ErrorFields
    }
  }
`;

export const UPDATE_PROFILE_ENTRY = /* GraphQL */ `
  mutation UpdateProfileEntry($input: UpdateProfileEntryInput!) {
    updateProfileEntry(input: $input) {
      __typename
      ... on UpdateProfileEntryPayload {
        entry {
          ...EntryFields
        }
      }
      ...ErrorFields
    }
  }
`;

export const DELETE_PROFILE_ENTRY = /* GraphQL */ `
  mutation DeleteProfileEntry($id: ID!) {
    deleteProfileEntry(input: {id: $id}) {
      __typename
      ... on DeleteProfileEntryPayload {
        deletedEntryId
      }
      ...ErrorFields
    }
  }
`;

export const IMPORT_PROFILE = /* GraphQL */ `
  mutation ImportProfile($input: ImportProfileInput!) {
    importProfile(input: $input) {
      __typename
      ... on ImportProfilePayload {
        entries {
          ...EntryFields
        }
      }
      ...ErrorFields
    }
  }
`;

export const CHANGES_CURSOR = /* GraphQL */ `
  query ChangesCursor($userId: ID!) {
    user(userId: $userId) {
      changesCursor
    }
  }
`;

export const CHANGES = /* GraphQL */ `
  query Changes($userId: ID!, $first: Int, $after: String) {
    user(userId: $userId) {
      changes(first: $first, after: $after) {
        nodes {
          ...ChangeFields
        }
      }
    }
  }
`;

export const EVENTS = /* GraphQL */ `
  query Events($userId: ID!, $first: Int, $after: String, $search: String) {
    user(userId: $userId) {
      events(first: $first, after: $after, search: $search) {
        nodes {
          ...EventFields
        }
      }
    }
  }
`;

export const PROFILE_UPDATED = /* GraphQL */ `
  subscription ProfileUpdated($userId: ID!, $since: String, $kinds: [ChangeKind!]) {
    profileUpdated(userId: $userId, since: $since, kinds: $kinds) {
      ...ChangeFields
    }
  }
`;

/** An operation with the fragments it spreads appended, as one document to send. */
export function withFragments(operation: string, ...fragments: string[]): string {
  return [operation, ...fragments].join("");
}
